"""The host contract DPC and every host build on: ``HostModel``/``HostLoss`` (``interface``), how every host trains
and the registry's hosts (``host_trainer``), what a checkpoint records of its host (``settings``), per-dataset
settings (``dataset_settings``) and the prompt rounding ``MODEL.REFERENCE_PARITY`` implies (``prompt_rounding``)."""
