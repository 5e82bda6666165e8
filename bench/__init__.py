"""`make bench`: measures model compute, serving, memory and Gatys speed on the machine it runs on."""
