"""The command-line layer: parses arguments, calls the libraries, renders results."""
