"""The test loop's logits (``scoring``) and the on-disk cache of frozen test-image features (``feature_cache``)."""
