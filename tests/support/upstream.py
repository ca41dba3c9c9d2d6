"""The sample upstream service lives with the local stack (local.upstream); tests start their own."""

from local.upstream import SampleUpstream, SeenRequest, UpstreamKnobs

__all__ = ["SampleUpstream", "SeenRequest", "UpstreamKnobs"]
