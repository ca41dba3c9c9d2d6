"""Report export service: the domain package shared by every Lambda through the layer."""
