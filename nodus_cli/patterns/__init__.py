"""Log patterns: the template of every log line, and which kinds are new or bursting."""
