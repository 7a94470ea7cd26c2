"""The `molleak` command line. Each module here adds one verb through `register(subparsers)`."""
