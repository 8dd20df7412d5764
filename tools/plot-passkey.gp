# Passkey accuracy heat maps, length x depth, one panel per policy, side by side (as in the
# cascade paper). Called by scripts/make-results.sh: gnuplot -e "dir='...'; png='...'" this file.
load dir.'/plot/panels.gp'
set terminal pngcairo size 330*pk_cols, 300*pk_rows font "sans,9"
set output png
set termoption noenhanced
set multiplot layout pk_rows, pk_cols
set palette defined (-1 "#dddddd", -0.001 "#dddddd", 0 "#b2182b", 0.5 "#f7f7f7", 1 "#2166ac")
set cbrange [-1:1]
unset colorbox
set xrange [-0.5:4.5]
set xtics ("0-20" 0, "20-40" 1, "40-60" 2, "60-80" 3, "80-100" 4)
set xlabel "key depth (% of prompt)"
set ylabel "prompt tokens"
do for [i=1:pk_n] {
  eval(pk_ytics[i])
  stats pk_file[i] using 2 nooutput
  set yrange [-0.5:STATS_max + 0.5]
  set title pk_title[i]
  plot pk_file[i] using 1:2:3 with image notitle, \
       '' using 1:2:($3 >= 0 ? sprintf("%.2f", $3) : "") with labels notitle
}
unset multiplot
