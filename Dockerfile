# Airflow image for the docker-compose deployment: the pinned runtime requirements plus the Xero provider. Test
# and lint tools (requirements-dev.txt) stay out of the image.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt

COPY --chown=airflow:0 plugins /opt/airflow/xero-provider
RUN pip install --no-cache-dir --no-deps /opt/airflow/xero-provider

# The one-time set-up that airflow-init runs (the UI users' passwords).
COPY --chown=airflow:0 docker/prepare_users.py /opt/airflow/docker/prepare_users.py

# The data folder belongs to the task user, so a fresh named volume mounted on it starts with that owner
# (airflow-init also hands it over when AIRFLOW_UID is not 50000 or the volume is older than the image).
USER root
RUN mkdir -p /opt/airflow/data/xero/_governor \
    && chown -R airflow:0 /opt/airflow/data \
    && chmod -R u+rwX,g+rwX /opt/airflow/data
USER airflow
