"""streamfunnel: micro conversions and funnel abandonment from Kafka clickstreams."""

__version__ = "0.1.0"
