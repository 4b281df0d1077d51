"""Build backend/services/common_passwords.txt: passwords and password stems that attackers try first.

No list is downloaded (the build runs offline): the list is put together from well-known patterns of
leaked-password corpora — the most used passwords, the words and names they are built on, keyboard walks,
and those stems with the digits, years and symbols people add to reach a length rule. Lower case, one a
line, sorted. The password policy (backend/services/passwords.py) also refuses any stem from this list
with digits or symbols around it and common letter-for-symbol swaps (p@ssw0rd), so the list need not
spell out every combination.

    python scripts/common_passwords.py > backend/services/common_passwords.txt
"""

from __future__ import annotations

TOP = """
123456 password 12345678 qwerty 123456789 12345 1234 111111 1234567 dragon 123123 baseball abc123
football monkey letmein 696969 shadow master 666666 qwertyuiop 123321 mustang 1234567890 michael 654321
superman 1qaz2wsx 7777777 121212 000000 qazwsx 123qwe killer trustno1 jordan jennifer zxcvbnm asdfgh
hunter buster soccer harley batman andrew tigger sunshine iloveyou 2000 charlie robert thomas hockey
ranger daniel starwars klaster 112233 george computer michelle jessica pepper 1111 zxcvbn 555555
11111111 131313 freedom 777777 pass maggie 159753 aaaaaa ginger princess joshua cheese amanda summer
love ashley nicole chelsea biteme matthew access yankees 987654321 dallas austin thunder taylor matrix
mobilemail mom monitor monitoring montana moon moscow william corvette hello martin heather secret
fucker merlin diamond 1234qwer gfhjkm hammer silver 222222 88888888 anthony justin test bailey q1w2e3r4t5
patrick internet scooter orange 11111 golfer cookie richard samantha bigdog guitar jackson whatever
mickey chicken sparky snoopy maverick phoenix camaro sexy peanut morgan welcome falcon cowboy ferrari
samsung andrea smokey steelers joseph mercedes dakota arsenal eagles melissa boomer booboo spider
nascar monster tigers yellow xxxxxx 123123123 gateway marina diablo bulldog qwer1234 compaq purple
hardcore banana junior hannah 123654 porsche lakers iceman money cowboys 987654 london tennis 999999
ncc1701 coffee scooby 0000 miller boston q1w2e3r4 fuckoff brandon yamaha chester mother forever johnny
edward 333333 oliver redsox player nikita knight fender barney midnight please brandy chicago badboy
iwantu slayer rangers charles angel flower bigdaddy rabbit wizard bigdick jasper enter rachel chris
steven winner adidas victoria natasha 1q2w3e4r jasmine winter prince panties marine ghbdtn fishing
cocacola casper james 232323 raiders 888888 marlboro gandalf asdfasdf crystal 87654321 12344321 sexsex
golden blowme bigtits 8675309 panther lauren angela bitch spanky thx1138 angels madison winston
shannon mike toyota blowjob jordan23 canada sophie apples dick tiger razz 123abc pokemon qazxsw 55555
qwaszx muffin johnson murphy cooper jonathan liverpoo david danielle 159357 jackie 1990 123456a
789456 turtle horny abcd1234 scorpion qazwsxedc 101010 butter carlos password1 dennis slipknot
qwerty123 booger asdf 1991 black startrek 12341234 cameron newyork rainbow nathan john 1992 rocket
viking redskins butthead asdfghjkl 1212 sierra peaches gemini doctor wilson sandra helpme qwertyui
victor florida dolphin pookie captain tucker blue liverpool theman bandit dolphins maddog packers
jaguar lovers nicholas united tiffany maxwell zzzzzz nirvana jeremy suckit stupid porn monica elephant
giants jackass hotdog rosebud success debbie mountain 444444 xxxxxxxx warrior 1q2w3e4r5t q1w2e3 123456q
albert metallic lucky azerty 7777 shithead alex bond007 alexis 1111111 samson 5150 willie scorpio
bonnie gators benjamin voodoo driver dexter 2112 jason calvin freddy 212121 creative 12345a sydney
rush2112 1989 asdfghjk red123 bubba 4815162342 passw0rd trouble gunner happy fucking gordon legend
jessie stella qwert eminem arthur apple nissan bullshit bear america 1qazxsw2 nothing parker 4444
rebecca qweqwe garfield 01012011 beavis 69696969 jack asdasd december 2222 102030 252525 11223344
magic apollo skippy 315475 girls kitten golf copper braves shelby godzilla beaver fred tomcat august
buddy airborne 1993 1988 lifehack qqqqqq brooklyn animal platinum phantom online xavier darkness
blink182 power fish green 789456123 voyager police travis 12qwaszx heaven snowball lover abcdef 00000
pakistan 007007 walter playboy blazer cricket sniper hooters donkey willow loveme saturn therock
redwings bigboy pumpkin trinity williams tits nintendo digital destiny topgun runner marvin guinness
chance bubbles testing fire november minecraft asdf1234 lasvegas sergey broncos cartman private celtic
birdie little cassie babygirl donald beatles 1313 dickhead family 12121212 school louise gabriel eclipse
fluffy 147258369 lol123 explorer beer nelson flyers spencer scott lovely gibson doggie cherry andrey
snickers buffalo pantera metallica member carter qwertyu peter alexande steve bronco paradise goober
5555 samuel montana1 mexico dreams michigan cock carolina friends magnum surfer maximus genius cool
vampire lacrosse asd123 aaaa christin kimberly speedy sharon carmen 111222 kristina sammy racing ou812
sabrina horses 0987654321 qwerty1 pimpin baby stalker enigma 147147 star poohbear boobies 147258
simple bollocks 12345q marcus brian 1987 qweasdzxc drowssap hahaha caroline barbara dave viper drummer
action einstein bitches genesis hello1 scotty friend forest 010203 hotrod google vanessa spitfire
badger maryjane friday alaska 1232323q tester jester jake champion billy 147852 rock hawaii badass
chevy 420420 walker stephen eagle1 bill 1986 october gregory svetlana pamela 1984 music shorty westside
stanley diesel courtney 242424 kevin porno hitman boobs mark 12345qwert reddog frank qwe123 popcorn
patricia aaaaaaaa 1969 teresa mozart buddha anderson paul melanie abcdefg security lucky1 lizard
denise 3333 a12345 123789 ruslan stargate simpsons scarface eagle 123456789a thumper olivia naruto
1234554321 general cherokee a123456 vincent usuckballz1 spooky qweasd cumshot free frankie douglas
death 1980 loveyou kitty kelly veronica suzuki semperfi penguin mercury liberty spirit scotland natalie
marley vikings system sucker king allison marshall 1979 098765 qwerty12 hummer adrian 1985 vfhbyf
sandman rocky leslie antonio 98765432 4321 softball passion mnbvcxz bastard passport horney rascal
howard franklin bigred assman alexander homer redrum jupiter claudia 55555555 141414 zaq12wsx shit
patches nigger cunt raider infinity andre 54321 galore college russia kawasaki bishop 77777777
vladimir money1 freeuser wildcat francis disney budlight brittany 1994 00000000 sweet oksana honda
domino bulldogs brutus swordfis norman monday jimmy ironman ford fantasy 9999 7654321 pppppp welcome1
administrator admin root toor changeme default guest user login letmein1 passwort motdepasse
contrasena senha 1qaz2wsx3edc 1q2w3e4r5t6y 1q2w3e4r5t6y7u8i9o0p zaq1xsw2cde3 qwerty123456
password123 password1234 password12345 iloveyou1 iloveyou123 abc123456 abcd123456 a1b2c3d4e5
qwertyuiop123 1234567890qwerty qwerty1234567890 asdfghjkl123 zxcvbnm123 1qa2ws3ed 147258369a
"""

# What passwords are built on: names, teams, animals, places, things people love (lower case).
STEMS = """
password passwort passw0rd secret welcome letmein iloveyou loveyou trustno1 sunshine princess
dragon monkey shadow master superman batman spiderman ironman starwars pokemon minecraft fortnite
football baseball basketball soccer hockey tennis golf cricket rugby volleyball softball lacrosse
michael jennifer jessica ashley amanda daniel joshua matthew andrew christopher anthony william
thomas charlie robert richard joseph james john david jordan taylor hannah samantha sarah elizabeth
emily madison michelle nicole stephanie melissa rebecca laura lauren heather amber megan rachel
brandon justin tyler kevin jason ryan eric adam brian steven mark paul peter george edward henry
oliver jack harry jacob ethan noah liam lucas mason logan alexander benjamin samuel nathan patrick
sophie chloe olivia emma isabella ava mia charlotte amelia grace lily ella victoria natalie anna
maria jose carlos juan luis miguel pedro antonio manuel francisco alejandro diego fernando
angel angela diana monica veronica sandra patricia linda barbara susan karen nancy lisa betty
chelsea arsenal liverpool manchester barcelona madrid juventus milan bayern dortmund celtic rangers
yankees redsox cowboys steelers packers eagles giants lakers bulls celtics raiders broncos dolphins
tiger tigers lion lions eagle falcon hawk wolf wolves bear bears panther jaguar cobra viper shark
dolphin horse horses pony puppy kitten kitty doggy doggie cat cats dog dogs bunny rabbit turtle
butterfly flower flowers rose roses daisy lily orchid garden forest ocean river mountain summer
winter spring autumn sunny rainbow thunder lightning storm snow snowball snowflake fire firefly
london paris berlin zurich geneva basel bern vienna munich hamburg moscow tokyo newyork chicago
boston dallas texas florida california canada mexico brazil america england germany france
switzerland schweiz suisse italia spain russia india china japan australia africa europe
chocolate cookie cookies cupcake candy sugar honey cheese pizza pasta banana apple orange cherry
strawberry peach mango lemon coffee beer whiskey vodka tequila wine champagne
music guitar piano drums rock metal punk jazz blues hiphop rapper dance singer
computer internet google facebook twitter instagram youtube netflix amazon apple samsung nokia
iphone android windows linux microsoft hello hellokitty helloworld goodbye whatever nothing
freedom liberty justice peace love lovely lover lovers loving beautiful pretty sweet sweetheart
sweetie honeybunny babygirl babyboy baby angel angels devil heaven hell god jesus christ faith
hope trust believe forever always together family friends friend bestfriend happy smile
qwerty qwertz azerty asdfgh zxcvbn qazwsx trustme letmein changeme default administrator admin
superuser manager system server database oracle mysql postgres security secure access
hospital clinic doctor nurse medicine pharmacy pharmacist patient health medical therapy
celltherapy ferrari porsche mercedes bmw audi toyota honda nissan mustang corvette camaro harley
yamaha suzuki kawasaki ducati chevrolet ford jeep volvo tesla
matrix zelda mario luigi sonic naruto goku pikachu gandalf frodo hobbit hogwarts potter
harrypotter voldemort skywalker vader yoda chewbacca startrek enterprise spock
monday tuesday wednesday thursday friday saturday sunday january february march april june
july august september october november december
diamond crystal silver golden gold platinum emerald ruby sapphire pearl
purple yellow green blue black white red pink orange brown
pepper ginger maggie buster bailey max charlie lucky rocky molly buddy daisy sadie toby jake
bella coco lola luna simba nala milo oscar teddy bandit shadow smokey tigger garfield snoopy
scooby sparky peanut muffin cupcake biscuit oreo
player gamer winner champion legend hero warrior soldier ninja samurai knight king queen prince
killer hunter sniper ranger pirate captain general major sergeant
""".split()  # noqa: SIM905 - a block of words reads better than a list literal of hundreds

KEYBOARD = """
qwertyuiop asdfghjkl zxcvbnm qwertzuiop yxcvbnm azertyuiop qsdfghjklm wxcvbn 1234567890 0987654321
1q2w3e4r5t6y7u8i9o0p 1qaz2wsx3edc4rfv5tgb zaq1xsw2cde3vfr4 qazwsxedcrfv qweasdzxc zxcasdqwe
1qazxsw2 2wsxzaq1 poiuytrewq lkjhgfdsa mnbvcxz qwerasdfzxcv asdfqwer qwerqwer asdfasdf zxcvzxcv
!qaz@wsx#edc 1q2w3e 1q2w3e4r 1q2w3e4r5t q1w2e3r4t5y6 a1s2d3f4g5 z1x2c3v4b5 147258369 159357852
123qweasdzxc qweasdzxc123 1qaz!qaz 1qaz@wsx qwe123asd 12qwaszx 123qwe123 qwe123qwe
""".split()  # noqa: SIM905 - as above

SUFFIXES = (
    ["1", "12", "123", "1234", "12345", "123456", "1234567", "!", "!!", "1!", "12!", "123!", "1234!"]
    + ["@123", "#1", "69", "007", "01", "11", "13", "21", "22", "23", "99", "00", "2k", "_123", ".123"]
    + [str(year) for year in range(1960, 2031)]
    + [f"{year}!" for year in range(2015, 2031)]
)
PREFIXES = ["my", "i love ", "ilove", "the", "mr", "big", "super", "love"]


def build() -> list[str]:
    words = {w.lower() for w in TOP.split()} | set(STEMS) | set(KEYBOARD)
    out = set(words)
    # The stems of the most used passwords, with what people add to them, in full.
    for stem in [w for w in TOP.split() if w.isalpha()][:160]:
        for suffix in SUFFIXES:
            out.add(stem + suffix)
        for prefix in PREFIXES:
            out.add(prefix + stem)
    # Only what a length rule of 10 lets through is worth listing in full; the stems stay for the
    # stem check whatever their length.
    return sorted(w for w in out if len(w) >= 10 or w in words)


if __name__ == "__main__":
    print("\n".join(build()))
