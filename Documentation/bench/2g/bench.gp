set terminal pngcairo size 900,540 noenhanced
set grid
set output '/tmp/bench3/size-case1.png'
set title 'File size during the save: 2G ws=1G rate=max random 1 vCPU file'
set xlabel 'seconds from the start of the save'
set ylabel 'MiB'
set key outside right
plot '/tmp/bench3/size-case1-fixed.dat' using 1:2 with lines lw 2 title 'fixed', '/tmp/bench3/size-case1-append.dat' using 1:2 with lines lw 2 title 'append', '/tmp/bench3/size-case1-qemu.dat' using 1:2 with lines lw 2 title 'qemu'
unset label 1
set output '/tmp/bench3/passes-case1.png'
set title 'Bytes written per pass: 2G ws=1G rate=max random 1 vCPU file'
set xlabel 'pass'
set xtics 1
set ylabel 'MiB'
set key outside right
set logscale y
plot '/tmp/bench3/passes-case1-fixed.dat' using 1:2 with linespoints lw 2 title 'fixed', '/tmp/bench3/passes-case1-append.dat' using 1:2 with linespoints lw 2 title 'append'
unset logscale y
set output '/tmp/bench3/downtime.png'
set title 'Downtime against the guest dirty rate (every run)'
set xlabel 'guest dirty rate, pages/ms (as asked; unlimited: as measured)'
set ylabel 'downtime, ms'
set logscale y
set key outside right
plot '/tmp/bench3/downtime-fixed.dat' using 1:2 with points pt 7 ps 1.3 title 'fixed', '/tmp/bench3/downtime-append.dat' using 1:2 with points pt 7 ps 1.3 title 'append', '/tmp/bench3/downtime-qemu.dat' using 1:2 with points pt 7 ps 1.3 title 'qemu'
unset logscale y
