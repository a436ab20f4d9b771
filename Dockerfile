# syntax=docker/dockerfile:1
# One image for both roles of kubeoidc: `kubeoidc operator` and `kubeoidc provider` (the default).
# The Helm chart picks the role with the container's args. Kubernetes probes check health, so there is
# no HEALTHCHECK here.

# Stage 1: wheels of the dependencies, then of the project. The dependency layer depends only on
# pyproject.toml, so editing the sources reuses it. Every dependency ships binary wheels for CPython
# 3.11 on Linux: no compiler is needed.
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip wheel --no-cache-dir --wheel-dir /wheels --requirement requirements.txt

# kubeoidc_contract/crd/oidcclient.yaml links to crds/oidcclient.yaml: both are copied, and the wheel holds the file.
COPY README.md ./
COPY crds/ crds/
COPY kubeoidc_contract/ kubeoidc_contract/
COPY kubeoidc/ kubeoidc/
COPY operator/ operator/
COPY provider/ provider/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the runtime. Only the installed packages: no wheels, no pip cache, no build tools.
FROM python:3.11-slim

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="kubeoidc" \
      org.opencontainers.image.description="OpenID Connect clients as Kubernetes resources, and the OpenID Provider that serves them." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp

# The wheels are bind-mounted from the build stage, so they never become a layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/kubeoidc-*.whl

# A numeric non-root user (no passwd entry needed): Kubernetes can check runAsNonRoot against it.
USER 65532:65532

# 8080: the provider's HTTP port. 8081: the operator's liveness endpoint (/healthz).
EXPOSE 8080 8081

ENTRYPOINT ["kubeoidc"]
CMD ["provider"]
