# The chatcore reference server and workers, with every production backend driver.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir '.[server,kafka,cassandra,redis]'
EXPOSE 8000
CMD ["chatcore", "serve", "--host", "0.0.0.0", "--dev"]
