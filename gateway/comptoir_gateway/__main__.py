"""``python -m comptoir_gateway``: run the gateway under uvicorn."""

from comptoir_gateway.main import main

if __name__ == "__main__":
    main()
