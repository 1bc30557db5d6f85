"""Hardware behind small interfaces: GPIO (gpiozero), Modbus (pymodbus) and a simulation."""
