"""The peers chatcore is measured against, each a small server of its own process."""
