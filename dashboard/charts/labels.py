"""What the charts share about their axis labels."""

# The widest (px) a category label on a bar or dot chart's y axis is drawn; a longer one is cut
# with an ellipsis, its full text in the mark's tooltip (and in the table under the chart). Beside
# the sidebar at 1024 px a chart is about 650 px wide: labels of 420 px (criterion wording, system
# organ classes) left the bars a third of it and pushed the legend off the edge.
LABEL_LIMIT = 240
