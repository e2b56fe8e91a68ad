"""bms modbus"""
