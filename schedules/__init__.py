"""The pure decision core: each zone's level and its source, from configuration, time and inputs."""
