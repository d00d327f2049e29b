"""What the API's tests share besides fixtures."""

GENERATIONS = "/v1/openai/videos/generations"  # the provider's path, which the studio answers too
