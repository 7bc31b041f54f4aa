-- Runs once when the Postgres volume is first created: a warehouse database beside Airflow's metadata database.
CREATE DATABASE xero_warehouse;
