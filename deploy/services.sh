# The services of the platform, in the order they are migrated and declared.
SERVICES=(accounts notifications provisioning stats audit)
