"""kubeoidc: OpenID Connect clients as Kubernetes resources, and the OpenID Provider that serves them."""
