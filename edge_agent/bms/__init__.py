"""BMS acquisition: the BmsSource seam, CAN (GB/T 27930, UDS, DBC) and Modbus backends."""
