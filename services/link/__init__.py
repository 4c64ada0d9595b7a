"""LinkService: the emulated narrow link between edge and ground."""
