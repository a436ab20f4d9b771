"""Helpers shared by the test suites: Kubernetes objects as the operator writes them, a test provider."""
