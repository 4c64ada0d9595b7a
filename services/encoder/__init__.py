"""EncoderService: image in, packet out."""
