"""Everything that talks to Docker. Only ``engine`` imports the docker SDK."""
