"""The monitoring-meeting pack (issue #10): one PDF and one Excel workbook per study and data cut.

``pack.build_pack`` gathers every figure and listing through the query functions the pages use;
``pdf.pack_pdf`` lays them out (A4 landscape), ``workbook.pack_workbook`` writes the listings, and
``files.write_pack`` puts both in a folder without leaving a half-written file. No streamlit here:
the Overview page's button and ``study-monitor report`` share all of it.
"""
