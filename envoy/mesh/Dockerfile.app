# The demo apps under docker-compose (the native runner starts the same app.py as a process).
FROM python:3.12-slim
COPY requirements.txt /srv/requirements.txt
RUN pip install --no-cache-dir -r /srv/requirements.txt
COPY app.py /srv/app.py
ENV APP_HOST=0.0.0.0
CMD ["python", "/srv/app.py", "8080"]
