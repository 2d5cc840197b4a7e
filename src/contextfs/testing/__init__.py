"""Test helpers ContextFS ships so that new backends can prove they keep its contracts."""
