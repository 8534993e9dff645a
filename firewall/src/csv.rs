//! PLACEHOLDER until the PAN-OS helper lands.
