"""Data and model cards rendered from manifests (Hub-compatible YAML header + Markdown body)."""
