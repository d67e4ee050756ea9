# Environment of the native (no Docker) Airflow: sourced by the Makefile's recipes.
# Mirrors what the Astro Runtime image sets (see Dockerfile), with state under .local/.
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AIRFLOW_HOME="$PROJECT_ROOT/.local/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$PROJECT_ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$PROJECT_ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES='airflow.* astro.*'
export AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY=True
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-INFO}"
# As in the image and in the Astro CLI's standalone mode: include/ is on the path, so the
# DAGs and operators import the runtime package as `sparkify`.
export PYTHONPATH="$PROJECT_ROOT/include${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$PROJECT_ROOT/.venv/bin:$PATH"
