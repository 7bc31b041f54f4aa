# Airflow image for the docker-compose deployment: the pinned requirements plus the Xero provider.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt

COPY --chown=airflow:0 plugins /opt/airflow/xero-provider
RUN pip install --no-cache-dir --no-deps /opt/airflow/xero-provider
