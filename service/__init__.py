"""SNP orientation and slot-booking service for French CPTS."""
