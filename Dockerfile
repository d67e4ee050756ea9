# Astro Runtime 13.11.0 ships Airflow 2.11.2, the Airflow of requirements.lock (Astronomer's
# runtime catalog; tests/test_project_conformity.py checks that tag and lock agree). The
# runtime's ONBUILD step runs `pip install -r requirements.txt` right after this FROM.
FROM quay.io/astronomer/astro-runtime:13.11.0

# astro-sdk passes Table objects through XCom: Airflow must be allowed to deserialize them.
# The DAGs import the runtime package `sparkify` from include/ (as in standalone mode).
# Nothing here is local-only: connections and variables come from the deployment.
ENV AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES="airflow.* astro.*" \
    AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY=True \
    PYTHONPATH="/usr/local/airflow/include${PYTHONPATH:+:$PYTHONPATH}"

# astro-sdk-python 1.9.0 caps Flask-Session<0.6 (it never imports flask_session); this
# Airflow needs flask-session>=0.8. Listed in requirements.txt, pip would fail on the cap or
# swap the runtime's Airflow for one without flask-session (Airflow 3), so astro-sdk is
# installed here without its dependencies, which requirements.txt carries. The lock drops
# the same cap (requirements-overrides.txt). As root, like the ONBUILD pip step.
USER root
RUN pip install --no-cache-dir --no-deps astro-sdk-python==1.9.0
USER astro
