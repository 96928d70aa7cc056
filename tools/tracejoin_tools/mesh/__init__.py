"""The local mesh: gateway and sidecars (real Envoys), two FastAPI apps, a span collector;
run natively or generated as docker-compose."""
