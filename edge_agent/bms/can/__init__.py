"""bms can"""
