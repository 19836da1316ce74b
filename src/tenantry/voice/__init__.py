"""Part F — hybrid PSTN voice (seed 001, Skype for Business Cloud Connector Edition): the tenant's voice
configuration, its checks, and call routing served over SIP (docs/voice.md)."""
