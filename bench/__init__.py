"""The benchmark of issue 5: our bot against a gpt4free-style baseline, on the fakes."""
