# Astro Runtime 13.0.0 ships Airflow 2.11.0, the version in requirements.lock. Later 13.x
# tags carry a newer Airflow 2.11.x whose flask-session>=0.8 clashes with astro-sdk
# 1.9.0's Flask-Session<0.6: change the tag only together with the lock
# (tests/test_project_conformity.py checks that they agree).
FROM quay.io/astronomer/astro-runtime:13.0.0

# astro-sdk passes Table objects through XCom: Airflow must be allowed to deserialize them.
# The DAGs import the runtime package `sparkify` from include/ (as in standalone mode).
# Nothing here is local-only: connections and variables come from the deployment.
ENV AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES="airflow.* astro.*" \
    AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY=True \
    PYTHONPATH="/usr/local/airflow/include${PYTHONPATH:+:$PYTHONPATH}"
