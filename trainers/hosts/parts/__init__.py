"""Parts that several hosts share (vision-language prompts, text targets, MMRL's representation tokens, GPA,
the reference's order of operations) and PromptKD's teacher and data; no host trainer is registered here."""
