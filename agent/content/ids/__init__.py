"""What makes a number an identifier a firm holds: region codes, check characters, issuer ranges
and the column a value stands in. identifiers.py finds candidates and counts them with these."""
