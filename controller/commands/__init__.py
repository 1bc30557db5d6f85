"""One module per `streetlight` command."""
