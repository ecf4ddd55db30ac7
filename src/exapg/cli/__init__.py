"""The `exapg` command line: parsing and printing only; the work is done by the library."""
