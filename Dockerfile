# syntax=docker/dockerfile:1
# One image for both roles of kubeoidc: `kubeoidc operator` and `kubeoidc provider` (the default).
# The Helm chart picks the role with the container's args. Kubernetes probes check health, so there is
# no HEALTHCHECK here.
#
#   docker build -t kubeoidc:dev \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" --build-arg SOURCE=<repository URL> .

# The base image, for every stage. Pinned by an exact release tag (CPython 3.11.14 on Debian 12), not by
# digest: no digest was looked up when this was written. To pin the digest as well, read it with
# `docker buildx imagetools inspect python:3.11.14-slim-bookworm` (or `crane digest`) and write
# `python:3.11.14-slim-bookworm@sha256:<digest>`; refresh both when a new 3.11 release comes out.
ARG BASE=python:3.11.14-slim-bookworm

# Stage "build": /opt/kubeoidc, a virtual environment holding exactly what requirements.txt locks
# (hash-checked), then the project itself, built by the setuptools that requirements-build.txt locks, in
# a separate environment (/opt/build) and without build isolation. The dependency layer depends only on
# the lock, so editing the sources reuses it. Every dependency ships binary wheels for CPython 3.11 on
# Linux: no compiler is needed.
FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.txt requirements-build.txt ./
# Installed without bytecode (--no-compile): scripts/trim-environment compiles what the roles import.
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip install --no-cache-dir --require-hashes --requirement requirements-build.txt \
    && python3 -m venv --without-pip /opt/kubeoidc \
    && /opt/build/bin/pip --python /opt/kubeoidc/bin/python install --no-cache-dir --no-compile \
        --require-hashes --requirement requirements.txt

# kubeoidc_contract/crd/oidcclient.yaml links to crds/oidcclient.yaml: both are copied, and the wheel holds the file.
COPY pyproject.toml README.md ./
COPY crds/ crds/
COPY kubeoidc_contract/ kubeoidc_contract/
COPY kubeoidc/ kubeoidc/
COPY operator/ operator/
COPY provider/ provider/
COPY scripts/trim-environment scripts/
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
    && /opt/build/bin/pip --python /opt/kubeoidc/bin/python install --no-cache-dir --no-compile --no-deps \
        /tmp/wheels/kubeoidc-*.whl \
    && rm -rf /tmp/wheels \
    && /opt/kubeoidc/bin/python scripts/trim-environment

# Stage "sbom-tool": cyclonedx-bom in a throw-away environment, hash-checked from the test lock (only it
# and what it needs). It does not depend on the sources, so it is built once per lock.
FROM ${BASE} AS sbom-tool
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements-test.txt ./
COPY scripts/lock-subset scripts/
RUN python3 scripts/lock-subset requirements-test.txt cyclonedx-bom > requirements-sbom.txt \
    && python3 -m venv /opt/sbom \
    && /opt/sbom/bin/pip install --no-cache-dir --require-hashes --requirement requirements-sbom.txt

# Stage "sbom": a CycloneDX SBOM of the Python packages in /opt/kubeoidc, the environment the image ships.
FROM sbom-tool AS sbom
COPY pyproject.toml ./
COPY --from=build /opt/kubeoidc /opt/kubeoidc
RUN /opt/sbom/bin/cyclonedx-py environment --pyproject pyproject.toml --output-reproducible \
        --output-format JSON --output-file /tmp/sbom.cdx.json /opt/kubeoidc/bin/python

# The runtime: the base image, the environment and the SBOM. No pip cache, no wheels, no build tools.
FROM ${BASE}
ARG BASE
ARG VERSION=0.1.0
ARG REVISION=""
ARG SOURCE=""
LABEL org.opencontainers.image.title="kubeoidc" \
      org.opencontainers.image.description="OpenID Connect clients as Kubernetes resources, and the OpenID Provider that serves them." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE}"

ENV PATH=/opt/kubeoidc/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

COPY --from=build /opt/kubeoidc /opt/kubeoidc
COPY --from=sbom /tmp/sbom.cdx.json /usr/share/doc/kubeoidc/sbom.cdx.json

# A numeric non-root user (no passwd entry needed): Kubernetes can check runAsNonRoot against it.
USER 65532:65532

# 8080: the provider's HTTP port. 9090: the provider's /healthz, /readyz and /metrics. 8081: the
# operator's liveness endpoint (/healthz).
EXPOSE 8080 9090 8081

ENTRYPOINT ["kubeoidc"]
CMD ["provider"]
