"""Money: the cost of every activity in the person record (a tariff shipped as data), spend and its
concentration, fair-share population budgets, and risk-share agreements between partners.

See docs/finance.md.
"""
