"""Reproductions of what the Astro CLI does with this project, for machines without Docker.

``build_context`` computes the image's files from ``.dockerignore``; ``astro_dev``
reproduces ``astro dev pytest`` / ``astro dev parse`` on them; ``seed`` is the one-shot
loader of the S3 API that ``docker-compose.override.yml`` runs under ``astro dev start``.
"""
