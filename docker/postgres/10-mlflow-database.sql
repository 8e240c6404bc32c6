-- Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d), as POSTGRES_USER.
-- trendcast's bar store and schedule lock live in POSTGRES_DB; MLflow's tracking and registry tables get their own
-- database so the two schemas (and their migrations) never meet. docker-compose.yml's mlflow service uses it.
CREATE DATABASE mlflow;
