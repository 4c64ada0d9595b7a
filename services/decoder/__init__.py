"""DecoderService: packet in, image out."""
