//! Cisco Spaces: the Firehose stream, map metadata and floor images.
