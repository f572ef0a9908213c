"""Dataset cards written from the data (Hub YAML metadata, prose, surface statistics, figure,
license derivation) and publishing a version to the Hugging Face Hub."""
